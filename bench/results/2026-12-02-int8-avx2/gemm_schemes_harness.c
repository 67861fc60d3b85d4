// correctness + speed of dynamic int8 schemes vs f32
#include "CFlintCPU.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float frand(unsigned *s){*s=*s*1103515245u+12345u;return ((*s>>8)&0xffff)/32768.0f-1.0f;}
int main(int argc,char**argv){
  int threads = argc>1?atoi(argv[1]):1; int reps = argc>2?atoi(argv[2]):20;
  flint_pool *pool=flint_pool_create(threads);
  long shapes[][3]={{128,384,384},{128,1536,384},{128,384,1536},{1024,384,384},{128,768,768},{128,3072,768},{16,384,384},{5,37,29},{7,50,300},{130,33,515}};
  const char *sch[]={"s8s8","u8s7","u7s8","u7s7"};
  for(int si=0;si<10;si++){
    long m=shapes[si][0],n=shapes[si][1],k=shapes[si][2];
    unsigned seed=1; float *a=malloc(4*m*k),*w=malloc(4*n*k),*bias=malloc(4*n),*c=malloc(4*m*n),*ref=malloc(4*m*n),*aq=malloc(4*m*k),*wq=malloc(4*n*k);
    for(long i=0;i<m*k;i++)a[i]=frand(&seed)*3+(i%k==5?20:0); for(long i=0;i<n*k;i++)w[i]=frand(&seed)*0.2f; for(long i=0;i<n;i++)bias[i]=frand(&seed);
    float *pf=aligned_alloc(64,flint_pack_floats(16,n,k)*4+64); flint_pack_weight(w,n,k,k,16,pf);
    double tf=1e9; for(int r=0;r<reps;r++){double t=now(); flint_linear(pool,0,a,m,k,pf,16,n,k,bias,0,c,n); t=now()-t; if(t<tf)tf=t;}
    printf("[%ld %ld %ld] f32 %.1f GF/s",m,n,k,2.0*m*n*k/tf/1e9);
    for(int s=0;s<4;s++){
      setenv("FLINT_INT8_SCHEME",sch[s],1);
      size_t bytes=flint_pack_lowp_bytes(FLINT_W_INT8_DYN,n,k); void*p=aligned_alloc(64,(bytes+63)/64*64); float*sc=malloc(4*(n+16));
      flint_pack_weight_lowp(FLINT_W_INT8_DYN,w,n,k,k,p,sc);
      int scheme=flint_int8_dynamic_scheme(p,n,k);
      flint_unpack_weight_lowp(FLINT_W_INT8_DYN,p,sc,n,k,wq); flint_quantize_rows_int8(scheme,a,m,k,k,aq);
      flint_linear_reference(aq,m,k,wq,n,k,k,bias,0,ref,n);
      double best=1e9,worst=0;
      for(int isa=1;isa<=2;isa++){
        if(isa==1 && m*n*k>2000000) continue;
        flint_linear_lowp(pool,isa,FLINT_W_INT8_DYN,0,a,m,k,p,sc,n,k,bias,0,c,n);
        for(long i=0;i<m*n;i++){double mag=1e-3; for(long kk=0;kk<k;kk++)mag+=fabs(aq[(i/n)*k+kk]*wq[(i%n)*k+kk]); double e=fabs(c[i]-ref[i])/mag; if(!(e<=worst))worst=isnan(e)?1e9:e;}
      }
      for(int r=0;r<reps;r++){double t=now(); flint_linear_lowp(pool,0,FLINT_W_INT8_DYN,0,a,m,k,p,sc,n,k,bias,0,c,n); t=now()-t; if(t<best)best=t;}
      printf(" | %s(%d) %.1f GF/s err %.1e",sch[s],scheme,2.0*m*n*k/best/1e9,worst);
      free(p);free(sc);
    }
    printf("\n");
  }
}
