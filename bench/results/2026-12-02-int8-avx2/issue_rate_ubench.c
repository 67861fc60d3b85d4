#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <stdint.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define N 4000000L
#define T __attribute__((target("avx2,fma"),noinline))
T double t_madd(int*p){
  __m256i a[8];for(int i=0;i<8;i++)a[i]=_mm256_set1_epi32(i);
  __m256i x0=_mm256_set1_epi16(3),x1=_mm256_set1_epi16(4),y0=_mm256_set1_epi16(5),y1=_mm256_set1_epi16(6),y2=_mm256_set1_epi16(7),y3=_mm256_set1_epi16(8);
  double t=now();
  for(long n=0;n<N/8;n++){
   __asm__ volatile("":"+x"(x0),"+x"(x1),"+x"(y0),"+x"(y1),"+x"(y2),"+x"(y3));
   a[0]=_mm256_add_epi32(a[0],_mm256_madd_epi16(x0,y0)); a[1]=_mm256_add_epi32(a[1],_mm256_madd_epi16(x0,y1));
   a[2]=_mm256_add_epi32(a[2],_mm256_madd_epi16(x0,y2)); a[3]=_mm256_add_epi32(a[3],_mm256_madd_epi16(x0,y3));
   a[4]=_mm256_add_epi32(a[4],_mm256_madd_epi16(x1,y0)); a[5]=_mm256_add_epi32(a[5],_mm256_madd_epi16(x1,y1));
   a[6]=_mm256_add_epi32(a[6],_mm256_madd_epi16(x1,y2)); a[7]=_mm256_add_epi32(a[7],_mm256_madd_epi16(x1,y3));
  }
  t=now()-t; __m256i s=a[0];for(int i=1;i<8;i++)s=_mm256_add_epi32(s,a[i]); *p=_mm256_extract_epi32(s,0);
  return (double)N*16/t/1e9;
}
T double t_ubs(int*p){
  __m256i a[8];for(int i=0;i<8;i++)a[i]=_mm256_set1_epi32(i);
  __m256i x0=_mm256_set1_epi8(3),x1=_mm256_set1_epi8(4),y0=_mm256_set1_epi8(5),y1=_mm256_set1_epi8(6),y2=_mm256_set1_epi8(7),y3=_mm256_set1_epi8(8),one=_mm256_set1_epi16(1);
  double t=now();
#define U(i,x,y) a[i]=_mm256_add_epi32(a[i],_mm256_madd_epi16(_mm256_maddubs_epi16(x,y),one));
  for(long n=0;n<N/8;n++){
   __asm__ volatile("":"+x"(x0),"+x"(x1),"+x"(y0),"+x"(y1),"+x"(y2),"+x"(y3));
   U(0,x0,y0)U(1,x0,y1)U(2,x0,y2)U(3,x0,y3)U(4,x1,y0)U(5,x1,y1)U(6,x1,y2)U(7,x1,y3)
  }
  t=now()-t; __m256i s=a[0];for(int i=1;i<8;i++)s=_mm256_add_epi32(s,a[i]); *p=_mm256_extract_epi32(s,0);
  return (double)N*32/t/1e9;
}
T double t_fma(int*p){
  __m256 a[8];for(int i=0;i<8;i++)a[i]=_mm256_set1_ps(i);
  __m256 x0=_mm256_set1_ps(1.0001f),x1=_mm256_set1_ps(0.999f),y0=_mm256_set1_ps(1),y1=_mm256_set1_ps(2),y2=_mm256_set1_ps(3),y3=_mm256_set1_ps(4);
  double t=now();
#define F(i,x,y) a[i]=_mm256_fmadd_ps(x,y,a[i]);
  for(long n=0;n<N/8;n++){
   __asm__ volatile("":"+x"(x0),"+x"(x1),"+x"(y0),"+x"(y1),"+x"(y2),"+x"(y3));
   F(0,x0,y0)F(1,x0,y1)F(2,x0,y2)F(3,x0,y3)F(4,x1,y0)F(5,x1,y1)F(6,x1,y2)F(7,x1,y3)
  }
  t=now()-t; __m256 s=a[0];for(int i=1;i<8;i++)s=_mm256_add_ps(s,a[i]); *(float*)p=s[0];
  return (double)N*8/t/1e9;
}
T double t_ubsw(int*p){ // pair of maddubs summed in s16 (vpaddw) then one madd(ones)
  __m256i a[8];for(int i=0;i<8;i++)a[i]=_mm256_set1_epi32(i);
  __m256i x0=_mm256_set1_epi8(3),x1=_mm256_set1_epi8(4),y0=_mm256_set1_epi8(5),y1=_mm256_set1_epi8(6),y2=_mm256_set1_epi8(7),y3=_mm256_set1_epi8(8),one=_mm256_set1_epi16(1);
  double t=now();
#define W(i,x,y,z) a[i]=_mm256_add_epi32(a[i],_mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(x,y),_mm256_maddubs_epi16(x,z)),one));
  for(long n=0;n<N/8;n++){
   __asm__ volatile("":"+x"(x0),"+x"(x1),"+x"(y0),"+x"(y1),"+x"(y2),"+x"(y3));
   W(0,x0,y0,y1)W(1,x0,y1,y2)W(2,x0,y2,y3)W(3,x0,y3,y0)W(4,x1,y0,y1)W(5,x1,y1,y2)W(6,x1,y2,y3)W(7,x1,y3,y0)
  }
  t=now()-t; __m256i s=a[0];for(int i=1;i<8;i++)s=_mm256_add_epi32(s,a[i]); *p=_mm256_extract_epi32(s,0);
  return (double)N*64/t/1e9;
}
int main(){int b[64];double m[4]={0};
 for(int r=0;r<60;r++){double v[4]={t_fma(b),t_madd(b),t_ubs(b),t_ubsw(b)};for(int i=0;i<4;i++)if(v[i]>m[i])m[i]=v[i];}
 printf("best of 60: fma %.1f GMAC/s  madd %.1f  maddubs+madd1+add %.1f  2xmaddubs+addw+madd1 %.1f\n",m[0],m[1],m[2],m[3]);}
